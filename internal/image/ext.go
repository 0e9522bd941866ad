package image

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/creds"
	"google.golang.org/protobuf/encoding/protowire"
)

// CRIU's creds_entry has no field for ambient capabilities or no_new_privs.
// cryo keeps them as extra protobuf fields with numbers far above CRIU's:
// protobuf readers, crit among them, skip fields they do not know, so the
// image stays readable by CRIU's tools.
const (
	fieldCapAmb     protowire.Number = 1001
	fieldNoNewPrivs protowire.Number = 1002
)

// CredsExt is what cryo stores beside CRIU's credentials.
type CredsExt struct {
	CapAmb     uint64
	NoNewPrivs bool
}

// SetCredsExt records x in c.
func SetCredsExt(c *creds.CredsEntry, x CredsExt) {
	var b []byte
	b = protowire.AppendTag(b, fieldCapAmb, protowire.VarintType)
	b = protowire.AppendVarint(b, x.CapAmb)
	b = protowire.AppendTag(b, fieldNoNewPrivs, protowire.VarintType)
	b = protowire.AppendVarint(b, protowire.EncodeBool(x.NoNewPrivs))
	c.ProtoReflect().SetUnknown(b)
}

// GetCredsExt reads what SetCredsExt recorded (zero values if absent).
func GetCredsExt(c *creds.CredsEntry) (CredsExt, error) {
	var x CredsExt
	b := c.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return x, fmt.Errorf("creds extension: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return x, fmt.Errorf("creds extension: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return x, fmt.Errorf("creds extension: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case fieldCapAmb:
			x.CapAmb = v
		case fieldNoNewPrivs:
			x.NoNewPrivs = protowire.DecodeBool(v)
		}
	}
	return x, nil
}
