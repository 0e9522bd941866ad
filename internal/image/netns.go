package image

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/netdev"
	"google.golang.org/protobuf/encoding/protowire"
)

// NetdevName is CRIU's image of the links of net namespace id.
func NetdevName(id uint32) string { return fmt.Sprintf("netdev-%d.img", id) }

// IfaddrName is CRIU's image of the addresses of net namespace id: the
// output of `ip addr save` (no CRIU magic), which `ip addr showdump`
// reads.
func IfaddrName(id uint32) string { return fmt.Sprintf("ifaddr-%d.img", id) }

// RouteName is CRIU's image of the routes of net namespace id: the output
// of `ip route save`, which `ip route showdump` reads.
func RouteName(id uint32) string { return fmt.Sprintf("route-%d.img", id) }

// fieldNetnsSysctl: netns_entry, one "path=value" string per setting
// under /proc/sys/net. CRIU's fields keep the per-device settings as
// arrays in the order of its own list of names; cryo keeps them by name.
const fieldNetnsSysctl protowire.Number = 1001

// MaxNetSysctlBytes bounds one saved setting.
const MaxNetSysctlBytes = 4096

// SetNetnsSysctls records the settings in e, sorted by name.
func SetNetnsSysctls(e *netdev.NetnsEntry, sysctls map[string]string) {
	names := make([]string, 0, len(sysctls))
	for k := range sysctls {
		names = append(names, k)
	}
	sort.Strings(names)
	var b []byte
	for _, k := range names {
		b = protowire.AppendTag(b, fieldNetnsSysctl, protowire.BytesType)
		b = protowire.AppendString(b, k+"="+sysctls[k])
	}
	e.ProtoReflect().SetUnknown(b)
}

// NetnsSysctls reads what SetNetnsSysctls recorded.
func NetnsSysctls(e *netdev.NetnsEntry, max int) (map[string]string, error) {
	out := map[string]string{}
	for b := []byte(e.ProtoReflect().GetUnknown()); len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("extension fields: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num != fieldNetnsSysctl || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil, fmt.Errorf("extension fields: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("extension fields: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if len(v) > MaxNetSysctlBytes {
			return nil, fmt.Errorf("a setting of %d bytes", len(v))
		}
		k, val, ok := strings.Cut(string(v), "=")
		if !ok || k == "" || strings.Contains(k, "..") || strings.HasPrefix(k, "/") {
			return nil, fmt.Errorf("bad setting %q", v)
		}
		if out[k] = val; len(out) > max {
			return nil, fmt.Errorf("over %d settings", max)
		}
	}
	return out, nil
}

// WriteRaw writes an image of raw data (no CRIU magic), such as an
// address dump.
func (d *Dir) WriteRaw(name string, data []byte) error {
	path, err := d.file(name)
	if err != nil {
		return err
	}
	return d.writeFile(name, path, data)
}

// ReadRaw reads an image of raw data of at most max bytes.
func (d *Dir) ReadRaw(name string, max int64) ([]byte, error) {
	f, err := d.openRaw(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("image: read %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("image: %s: over %d bytes", name, max)
	}
	return b, nil
}
