package prwmetric

import (
	"reflect"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
)

// sameSet reports whether two attribute sets are equal, as Set.Equals
// does. The SDK hands a data point the same Set export after export: a copy
// of one value, whose attributes sit in one immutable array. When both sets
// hold the very same array they are equal without comparing it attribute
// by attribute, which on shapes with many metrics was an eighth of the
// export's CPU. attribute.Set keeps that array unexported, so sameSet reads
// it through setLayout, and only once setLayoutOK has checked, at start,
// that the layout is what this code expects; otherwise (another version of
// the attribute package) it always asks Set.Equals.
func sameSet(a, b *attribute.Set) bool {
	if setLayoutOK {
		x, y := (*setLayout)(unsafe.Pointer(a)), (*setLayout)(unsafe.Pointer(b))
		if x.hash == y.hash && *(*[2]unsafe.Pointer)(unsafe.Pointer(&x.data)) == *(*[2]unsafe.Pointer)(unsafe.Pointer(&y.data)) {
			return true
		}
	}
	return a.Equals(b)
}

// setLayout is attribute.Set's layout in go.opentelemetry.io/otel v1.47:
// the hash that Distinct holds, then the attributes, an array in an
// interface.
type setLayout struct {
	hash uint64
	data any
}

var setLayoutOK = checkSetLayout()

// checkSetLayout reports whether attribute.Set is laid out as setLayout:
// the same size, the hash first (compared with Distinct's before the
// interface is read, so that a different layout is never read as an
// interface), then an interface holding the set's attributes as an array.
func checkSetLayout() bool {
	if unsafe.Sizeof(attribute.Set{}) != unsafe.Sizeof(setLayout{}) || unsafe.Sizeof(attribute.Distinct{}) != unsafe.Sizeof(uint64(0)) {
		return false
	}
	s := attribute.NewSet(attribute.String("a", "layout"), attribute.Int("b", 1))
	d := s.Equivalent()
	x := (*setLayout)(unsafe.Pointer(&s))
	if x.hash == 0 || x.hash != *(*uint64)(unsafe.Pointer(&d)) {
		return false
	}
	v := reflect.ValueOf(x.data)
	if v.Kind() != reflect.Array || v.Type().Elem() != reflect.TypeFor[attribute.KeyValue]() || v.Len() != s.Len() {
		return false
	}
	for i, kv := range s.ToSlice() {
		if v.Index(i).Interface().(attribute.KeyValue) != kv {
			return false
		}
	}
	return true
}
