"""Ingest: Codex files → rows. ``mirror.backfill`` once, or ``watcher.Follower`` to keep up live.

Nothing is imported here: the processes that read rollouts ahead import only ``reader``.
"""
