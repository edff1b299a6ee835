"""The real ``roboflow`` client, guarded: downloads of pinned dataset versions and uploads of frames."""
