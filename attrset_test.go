package prwmetric

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

// TestSetLayoutChecked: with the attribute package this module requires,
// sameSet may take its shortcut; were the layout to change in an upgrade,
// this test fails (and sameSet asks Set.Equals, still correct).
func TestSetLayoutChecked(t *testing.T) {
	if !setLayoutOK {
		t.Fatal("attribute.Set is not laid out as setLayout: sameSet compares every attribute; update setLayout")
	}
}

// TestSameSet: sameSet answers as Set.Equals, for copies of one set (the
// shortcut), equal sets built apart, different sets, sets whose attributes
// differ only in type, and empty sets.
func TestSameSet(t *testing.T) {
	a := attribute.NewSet(attribute.String("method", "GET"), attribute.Int("code", 200))
	aCopy := a
	tests := []struct {
		name string
		x, y attribute.Set
		want bool
	}{
		{"copies", a, aCopy, true},
		{"equal, built apart", a, attribute.NewSet(attribute.Int("code", 200), attribute.String("method", "GET")), true},
		{"another value", a, attribute.NewSet(attribute.String("method", "PUT"), attribute.Int("code", 200)), false},
		{"another type", a, attribute.NewSet(attribute.String("method", "GET"), attribute.String("code", "200")), false},
		{"fewer attributes", a, attribute.NewSet(attribute.String("method", "GET")), false},
		{"empty and zero", *attribute.EmptySet(), attribute.Set{}, true},
		{"empty and not", attribute.Set{}, a, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameSet(&tt.x, &tt.y); got != tt.want {
				t.Errorf("sameSet = %v, want %v", got, tt.want)
			}
			if got := tt.x.Equals(&tt.y); got != tt.want {
				t.Errorf("the test is wrong: Set.Equals = %v", got)
			}
		})
	}
}
