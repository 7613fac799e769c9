package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// Timing cannot be measured reliably on a shared machine, so this test reads
// auth.go instead: a token may only be compared through
// crypto/subtle.ConstantTimeCompare on its SHA-256 digest (so the time does
// not depend on where two tokens differ, or on their lengths), never with ==,
// bytes.Equal or a map lookup, and the search over dashboard tokens must not
// stop at the first match (that would tell how far down the list a token is).
func TestTokensAreComparedInConstantTime(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "auth.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	constantTime := 0
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && !isLiteral(n.X) && !isLiteral(n.Y) && (isSecret(n.X) || isSecret(n.Y)) {
				t.Errorf("%s: %s compares a token directly; compare token digests with subtle.ConstantTimeCompare",
					fset.Position(n.Pos()), n.Op)
			}
		case *ast.IndexExpr:
			if isSecret(n.Index) {
				t.Errorf("%s: a lookup by token takes a time that depends on the token", fset.Position(n.Pos()))
			}
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				pkg, _ := sel.X.(*ast.Ident)
				switch {
				case pkg != nil && pkg.Name == "subtle" && sel.Sel.Name == "ConstantTimeCompare":
					constantTime++
				case pkg != nil && (pkg.Name == "bytes" && sel.Sel.Name == "Equal" || pkg.Name == "strings" && sel.Sel.Name == "Compare"):
					t.Errorf("%s: %s.%s is not constant time", fset.Position(n.Pos()), pkg.Name, sel.Sel.Name)
				}
			}
		case *ast.FuncDecl:
			if n.Name.Name == "dashboardUser" {
				ast.Inspect(n.Body, func(m ast.Node) bool {
					loop, ok := m.(*ast.RangeStmt)
					if !ok {
						return true
					}
					ast.Inspect(loop.Body, func(k ast.Node) bool {
						switch k := k.(type) {
						case *ast.ReturnStmt:
							t.Errorf("%s: dashboardUser returns from inside its loop; it must compare every token", fset.Position(k.Pos()))
						case *ast.BranchStmt:
							if k.Tok == token.BREAK {
								t.Errorf("%s: dashboardUser breaks out of its loop; it must compare every token", fset.Position(k.Pos()))
							}
						}
						return true
					})
					return false
				})
			}
		}
		return true
	})
	if constantTime < 2 {
		t.Errorf("auth.go calls subtle.ConstantTimeCompare %d times; want the ingest and the dashboard comparisons", constantTime)
	}
}

// isLiteral reports whether e is a constant such as "" or 1, which reveals
// nothing secret when compared.
func isLiteral(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return e.Name == "nil" || e.Name == "true" || e.Name == "false"
	}
	return false
}

// isSecret reports whether e names a token or a token's digest.
func isSecret(e ast.Expr) bool {
	var name string
	switch e := e.(type) {
	case *ast.Ident:
		name = e.Name
	case *ast.SelectorExpr:
		name = e.Sel.Name
	case *ast.SliceExpr:
		return isSecret(e.X)
	default:
		return false
	}
	name = strings.ToLower(name)
	return strings.Contains(name, "token") || strings.Contains(name, "digest")
}
