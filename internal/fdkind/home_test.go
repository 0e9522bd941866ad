package fdkind

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// homed are the kinds whose home is this package, and how code elsewhere
// would spell their image messages: the go-criu package of their entries,
// the FileEntry getter of their payload, an entry type built by hand.
var homed = []struct {
	kind    string
	imports []string
	names   []string
}{
	{"pipe", []string{"crit/images/pipe"}, []string{"GetPipe", "PipeEntry"}},
	{"FIFO", []string{"crit/images/fifo"}, []string{"GetFifo", "FifoEntry"}},
	{"memfd", nil, []string{"GetMemfd", "MemfdFileEntry"}},
	{"regular file", []string{"crit/images/remap-file-path"}, []string{"RegFileEntry{", "GhostFileEntry{"}},
	{"tty", []string{"crit/images/tty"}, []string{"GetTty", "TtyFileEntry", "TtyInfoEntry", "TermiosEntry"}},
	{"eventfd", []string{"crit/images/eventfd"}, []string{"GetEfd"}},
	{"signalfd", []string{"crit/images/signalfd"}, []string{"GetSgfd"}},
	{"timerfd", []string{"crit/images/timerfd"}, nil},
	{"inet socket", []string{"crit/images/sk-inet"}, []string{"GetIsk"}},
	{"inotify", []string{"crit/images/fsnotify"}, []string{"GetIfy", "GetFfy"}},
}

// TestKindsHaveOneHome: a kind that lives here is spelled nowhere else.
// dump and restore decide what is the tree's (who reads a queue, which
// process makes a file, which session takes a terminal); what a kind's
// entries are, how they are checked and made, is the kind's file here.
func TestKindsHaveOneHome(t *testing.T) {
	for _, dir := range []string{"../dump", "../restore"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, h := range homed {
					for _, suffix := range h.imports {
						if strings.HasSuffix(path, "/"+suffix) {
							t.Errorf("%s imports %s: the %s kind's entries belong in internal/fdkind", name, path, h.kind)
						}
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				var spelled string
				switch n := n.(type) {
				case *ast.SelectorExpr:
					spelled = n.Sel.Name
				case *ast.CompositeLit:
					if sel, ok := n.Type.(*ast.SelectorExpr); ok {
						spelled = sel.Sel.Name + "{"
					}
				}
				for _, h := range homed {
					for _, s := range h.names {
						if spelled == s {
							t.Errorf("%s: %s spells %s: the %s kind's entries belong in internal/fdkind", fset.Position(n.Pos()), name, s, h.kind)
						}
					}
				}
				return true
			})
		}
	}
}
