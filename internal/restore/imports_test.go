package restore

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// The image format lives in internal/image (and each kind in
// internal/fdkind): restore reads what dump writes without importing dump.
func TestDoesNotImportDump(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		ast, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == "github.com/cryo-cr/cryo/internal/dump" {
				t.Errorf("%s imports %s: the format belongs in internal/image", f, path)
			}
		}
	}
}
