package imagetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfleet/skyfleet/images"
)

// TestCatchesDamage checks that the checkers, run as Fsck runs them, pass a
// fresh image and catch the kind of damage go-diskfs does: an unset FSInfo
// free count on p1, a wrong free-block count on p2.
func TestCatchesDamage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "x.img")
	s := images.Spec{Size: 64 * images.MiB, BootSize: 40 * images.MiB,
		Boot: []images.File{images.FromBytes("config.txt", []byte("x"))}}
	if err := images.Build(img, s, nil); err != nil {
		t.Fatal(err)
	}
	Fsck(t, img)
	for i, damage := range []struct {
		off  int64 // in the partition
		b    []byte
		want string
	}{
		{512 + 488, []byte{0xFF, 0xFF, 0xFF, 0xFF}, "Free cluster summary uninitialized"},
		{1024 + 0x0C, []byte{1, 0, 0, 0}, "Superblock checksum does not match"},
	} {
		c := checks[i]
		p := filepath.Join(dir, c.tool)
		if err := images.ExtractPartition(img, c.part, p); err != nil {
			t.Fatal(err)
		}
		bin, err := find(c.tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := run(bin, c.clean, append(c.args, p)...); err != nil {
			t.Fatalf("%s before damage: %v", c.tool, err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteAt(damage.b, damage.off)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := run(bin, c.clean, append(c.args, p)...); err == nil || !strings.Contains(err.Error(), damage.want) {
			t.Errorf("%s after damage: %v, want %q", c.tool, err, damage.want)
		}
	}
}
