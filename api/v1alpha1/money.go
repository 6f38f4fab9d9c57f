/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package v1alpha1

import (
	"fmt"
	"strconv"
	"strings"
)

// Micros parses the amount into integer micro-dollars (USD x 1e6). It accepts exactly the
// strings the CRD schema accepts and rejects amounts that are not above zero.
func (m Money) Micros() (int64, error) {
	v, err := parseMicros(string(m))
	if err != nil {
		return 0, err
	}
	if v <= 0 {
		return 0, fmt.Errorf("amount %q must be greater than 0", string(m))
	}
	return v, nil
}

// ParseMicros parses an amount as FormatMicros writes it for a non-negative value (status
// figures such as "0.00" or "12.50") into micro-dollars. Zero is allowed.
func ParseMicros(s string) (int64, error) {
	return parseMicros(s)
}

// MicrosPerMTok parses the price into integer micro-dollars per million tokens
// (USD per MTok x 1e6, which is USD per token x 1e12). Zero is allowed.
func (p PricePerMTok) MicrosPerMTok() (int64, error) {
	return parseMicros(string(p))
}

// parseMicros turns a decimal string with at most 12 integer digits and 6 decimals into
// millionths, with no floating point.
func parseMicros(s string) (int64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 12 || (len(whole) > 1 && whole[0] == '0') || !digits(whole) ||
		(hasDot && (frac == "" || len(frac) > 6 || !digits(frac))) {
		return 0, fmt.Errorf("amount %q is not a decimal number of US dollars with at most 6 decimals", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	f := int64(0)
	if frac != "" {
		frac += strings.Repeat("0", 6-len(frac))
		if f, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return 0, fmt.Errorf("amount %q: %w", s, err)
		}
	}
	return w*1_000_000 + f, nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FormatMicros renders micro-dollars as a decimal US dollar string with at least two decimals
// and no trailing zeros beyond them: 1500000 -> "1.50", 1234567 -> "1.234567", -2000000 -> "-2.00".
func FormatMicros(micros int64) string {
	sign := ""
	u := uint64(micros)
	if micros < 0 {
		sign = "-"
		u = uint64(-micros)
	}
	frac := fmt.Sprintf("%06d", u%1_000_000)
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return fmt.Sprintf("%s%d.%s", sign, u/1_000_000, frac)
}
