package fdkind

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fown"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// number parses fdinfo's "key: value" line of d in the given base.
func number(d Dumped, key string, base int) (uint64, error) {
	v, ok := d.Info().Extra[key]
	if !ok {
		return 0, fmt.Errorf("%s: no %q in fdinfo", d.Where(), key)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), base, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: fdinfo %s %q: %w", d.Where(), key, v, err)
	}
	return n, nil
}

// pair parses fdinfo's "(sec, nsec)".
func pair(s string) (uint64, uint64, error) {
	s = strings.Trim(strings.TrimSpace(s), "()")
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not (sec, nsec)", s)
	}
	x, err := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	if err != nil {
		return 0, 0, err
	}
	y, err := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	return x, y, err
}

// fileFlags are the open file's flags as saved: without O_CLOEXEC, which
// fdinfo adds for a descriptor's FD_CLOEXEC.
func fileFlags(d Dumped) *uint32 { return proto.Uint32(d.Info().Flags &^ unix.O_CLOEXEC) }

// checkPath refuses a saved path a watch or mark cannot be added by again:
// relative, too long, or with a NUL inside.
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/") || len(path) >= unix.PathMax || strings.IndexByte(path, 0) >= 0 {
		return fmt.Errorf("bad path %q", path)
	}
	return nil
}

// noOwner is an F_SETOWN owner of nobody, which cryo saves for every file.
func noOwner() *fown.FownEntry {
	z := proto.Uint32(0)
	return &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z}
}

// putU64 appends little-endian 64-bit words, for structures passed to an
// injected call.
func putU64(b []byte, vs ...uint64) []byte {
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}
