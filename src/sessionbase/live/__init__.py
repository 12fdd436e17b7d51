"""The live engine: registered functions, read sets, invalidation and subscriptions."""
