// Package mounts sets up the filesystems of a Skyfleet device.
//
// The whole userland lives in the initramfs (the kernel's rootfs), so
// PID 1 starts with nothing mounted: MountEarly adds /proc, /sys, /dev,
// /dev/pts, /run and /tmp. FindDisk then waits for the SD card (or USB /
// virtio disk) to be probed, and MountBoot / MountPerm mount its FAT boot
// partition read-only and its ext4 data partition on /perm. Unmount is the
// poweroff counterpart. Every mount is skipped when its target already is
// a mount point, so calling these twice is harmless.
package mounts
