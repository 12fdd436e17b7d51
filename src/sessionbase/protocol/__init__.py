"""The Convex wire protocol: value codec and sync messages. Pure; imports nothing of ours."""
