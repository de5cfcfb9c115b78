package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

func runsText(n int) string {
	if n == 1 {
		return "one round"
	}
	return fmt.Sprintf("medians of %d rounds", n)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ratio formats a/b, or "—" without a b.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "—"
	}
	return sig(a/b, 2) + "×"
}

// sig formats v with n significant digits, without exponent notation for
// the magnitudes of this table.
func sig(v float64, n int) string {
	if v == 0 {
		return "0"
	}
	digits := n - 1 - int(math.Floor(math.Log10(math.Abs(v))))
	if digits < 0 {
		digits = 0
	}
	return thousandsStr(strconv.FormatFloat(v, 'f', digits, 64))
}

// thousands formats v rounded to an integer with thousands separators.
func thousands(v float64) string {
	return thousandsStr(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
}

func thousandsStr(s string) string {
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}
