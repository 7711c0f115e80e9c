"""Task storage on the host: the per-task ephemeral volume (ephemeral_volume, on ext4_images, loop_devices and
mounts) and what EFS volumes mount with (idmap, safe_paths)."""
