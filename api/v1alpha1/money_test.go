/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package v1alpha1

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMoneyMicros(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{in: "100", want: 100_000_000},
		{in: "100.00", want: 100_000_000},
		{in: "49.99", want: 49_990_000},
		{in: "0.000001", want: 1},
		{in: "0.5", want: 500_000},
		{in: "999999999999.999999", want: 999_999_999_999_999_999},
		{in: "0", err: "greater than 0"},
		{in: "0.000000", err: "greater than 0"},
		{in: "", err: "not a decimal"},
		{in: "1.", err: "not a decimal"},
		{in: ".5", err: "not a decimal"},
		{in: "01", err: "not a decimal"},
		{in: "1.0000001", err: "not a decimal"},
		{in: "-1", err: "not a decimal"},
		{in: "1e3", err: "not a decimal"},
		{in: "1,000", err: "not a decimal"},
		{in: "1000000000000", err: "not a decimal"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Money(tc.in).Micros()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseMicrosReadsFormatMicros(t *testing.T) {
	for _, v := range []int64{0, 1, 250_000, 12_500_000, 1_234_567} {
		got, err := ParseMicros(FormatMicros(v))
		require.NoError(t, err)
		require.Equal(t, v, got, FormatMicros(v))
	}
	_, err := ParseMicros("-1.00")
	require.Error(t, err)
}

func TestPriceMicrosPerMTok(t *testing.T) {
	got, err := PricePerMTok("3").MicrosPerMTok()
	require.NoError(t, err)
	require.Equal(t, int64(3_000_000), got, "$3 per MTok is 3e6 micro-dollars per MTok")
	got, err = PricePerMTok("0").MicrosPerMTok()
	require.NoError(t, err)
	require.Zero(t, got)
	got, err = PricePerMTok("0.30").MicrosPerMTok()
	require.NoError(t, err)
	require.Equal(t, int64(300_000), got)
	_, err = PricePerMTok("abc").MicrosPerMTok()
	require.Error(t, err)
}

func TestFormatMicros(t *testing.T) {
	for in, want := range map[int64]string{
		0:             "0.00",
		1:             "0.000001",
		1_500_000:     "1.50",
		1_234_567:     "1.234567",
		100_000_000:   "100.00",
		-2_000_000:    "-2.00",
		math.MinInt64: "-9223372036854.775808",
	} {
		require.Equal(t, want, FormatMicros(in), "FormatMicros(%d)", in)
	}
	// Round trip for every positive amount the parser accepts.
	for _, s := range []string{"0.01", "12.345", "7.00"} {
		m, err := Money(s).Micros()
		require.NoError(t, err)
		back, err := Money(FormatMicros(m)).Micros()
		require.NoError(t, err)
		require.Equal(t, m, back)
	}
}
