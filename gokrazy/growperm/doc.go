// Package growperm grows the /perm partition to fill the SD card on first
// boot.
//
// The image is built with a small ext4 partition 2 so it can be written
// to any card; the first boot claims the rest of the card:
//
//	grown, err := growperm.GrowPartition("/dev/mmcblk0", 2) // MBR + BLKPG
//	... mounts.MountPerm("/dev/mmcblk0p2", "/perm") ...
//	grown, err = growperm.GrowFilesystem("/dev/mmcblk0p2", "/perm") // online ext4 resize
//
// Both steps are idempotent (later boots find nothing to do) and return
// errors instead of panicking, so PID 1 can record a failure and carry on
// with a small /perm. The MBR arithmetic (PlanGrow, GrowTable) and the
// superblock parsing are plain functions over io.ReaderAt/WriterAt so they
// are tested on image files.
package growperm
