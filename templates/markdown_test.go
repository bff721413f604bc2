package templates

import "testing"

func TestTextEscapesByContext(t *testing.T) {
	for in, want := range map[string]string{
		"db down":                        "db down",
		"a\n# Owned\n```\nrest":          "a\n\\# Owned\n\\`\\`\\`\nrest",
		"<script>alert(1)</script>":      "&lt;script>alert(1)&lt;/script>",
		`<img src=x onerror="alert(1)">`: `&lt;img src=x onerror="alert(1)">`,
		"[x](javascript:1) ![i](u)":      `\[x\](javascript:1) !\[i\](u)`,
		"*a* _b_ ~~c~~ \\":               `\*a\* \_b\_ \~\~c\~\~ \\`,
		"> q\n- l\n+ l\n1. o\n2) o\n===": "\\> q\n\\- l\n\\+ l\n1\\. o\n2\\) o\n\\===",
		"| a | b |\n:--|--":              "\\| a | b |\n\\:--|--",
		"    code\n\n\n  x  ":            "code\nx",
		"R&D &amp; &#60; &x":             "R&D &amp;amp; &amp;#60; &x",
		"T2 <https://evil.example/p|https://status.example.com/ok>": "T2 https://status.example.com/ok (https://evil.example/p)",
		"a\r\nb\rc":        "a\nb\nc",
		"error rate > 30%": "error rate > 30%",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Line("a\n# b"); got != `a \# b` {
		t.Errorf("Line = %q", got)
	}
	for in, want := range map[string]string{"rollback": "`rollback`", "a`b": "``a`b``", "`x": "`` `x ``", "a\nb": "`a b`", "": ""} {
		if got := Code(in); got != want {
			t.Errorf("Code(%q) = %q, want %q", in, got, want)
		}
	}
}
