package main

import (
	"strings"
	"testing"
)

func TestCheckRelease(t *testing.T) {
	const lib = "module example.com/m\n\ngo 1.22\n"
	tests := []struct {
		name string
		sub  string // the go.mod of example.com/m/sub, released with example.com/m
		want string // in the error; "" for none
	}{
		{"sibling at the version", "module example.com/m/sub\n\nrequire example.com/m v0.1.0\n", ""},
		{"other modules at any version", "module example.com/m/sub\n\nrequire (\n\texample.com/m v0.1.0\n\texample.com/other v1.2.3\n)\n", ""},
		{"replace", "module example.com/m/sub\n\nrequire example.com/m v0.1.0\n\nreplace example.com/m v0.1.0 => ../\n",
			"sub/go.mod:5: replace example.com/m: a published go.mod must not replace modules"},
		{"replace of another module", "module example.com/m/sub\n\nreplace example.com/other => example.com/fork v1.0.0\n",
			"sub/go.mod:3: replace example.com/other"},
		{"sibling at another version", "module example.com/m/sub\n\nrequire example.com/m v0.0.9\n",
			"sub/go.mod:3: requires example.com/m v0.0.9, but the release makes it v0.1.0"},
		{"sibling at a pseudo-version", "module example.com/m/sub\n\nrequire example.com/m v0.0.0-20250101000000-abcdefabcdef\n",
			"requires example.com/m v0.0.0-20250101000000-abcdefabcdef"},
		{"one path twice", "module example.com/m\n", "module example.com/m is released twice"},
		{"a malformed path", "module example.com/m/sub/v2\n", "sub/go.mod: example.com/m/sub/v2@v0.1.0: invalid version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []goMod
			for dir, data := range map[string]string{"": lib, "sub": tt.sub} {
				g, err := parseGoMod(dir, []byte(data))
				if err != nil {
					t.Fatal(err)
				}
				mods = append(mods, g)
			}
			err := checkRelease(mods, "v0.1.0")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("checkRelease: %v; want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("checkRelease: got %v; want an error with %q", err, tt.want)
			}
		})
	}
}

func TestParseGoModNeedsModuleLine(t *testing.T) {
	if _, err := parseGoMod("sub", []byte("go 1.22\n")); err == nil || !strings.Contains(err.Error(), "sub/go.mod: no module line") {
		t.Errorf("parseGoMod of a go.mod without a module line: got %v; want an error naming sub/go.mod", err)
	}
}
