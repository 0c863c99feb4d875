package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Secret is a value that must never be shown: String, GoString, MarshalText, MarshalJSON and
// MarshalYAML all print "<redacted>" (or "" when it is empty). Value returns the secret itself.
type Secret string

// Redacted is what a non-empty Secret prints as.
const Redacted = "<redacted>"

// Value returns the secret.
func (s Secret) Value() string { return string(s) }

// String returns "<redacted>", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalText keeps encoders from writing the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON keeps encoding/json (and zap.Any) from writing the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalYAML keeps a YAML encoder from writing the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// ParseDuration reads a duration the way Arvados does: Go's forms ("10s", "1m30s", "1h",
// "500ms"), and a bare "0". Any other number without a unit is an error, as in Arvados.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("duration %q has no unit (write %ss, %sm, …)", s, s, s)
		}
		return 0, fmt.Errorf("duration %q: want a number with a unit: 10s, 1m30s, 2h, 500ms", s)
	}
	return d, nil
}

// FormatDuration writes d the way Arvados does: Go's form without the zero tails ("1h", not
// "1h0m0s"; "5m", not "5m0s").
func FormatDuration(d time.Duration) string {
	s := d.String()
	s = strings.Replace(s, "m0s", "m", 1)
	return strings.Replace(s, "h0m", "h", 1)
}

// ByteSize is a number of bytes. In configuration files it is written as Arvados writes it:
// a number, optionally followed by a unit: K M G T P E (powers of 1000) or Ki Mi Gi Ti Pi Ei
// (powers of 1024), with an optional B: "550MiB", "1GiB", "1G" (10^9 bytes), "2.5GiB",
// "576716800".
type ByteSize int64

// byteUnits are Arvados's unit prefixes (sdk/go/arvados/byte_size.go).
var byteUnits = map[string]int64{
	"": 1, "K": 1e3, "Ki": 1 << 10, "M": 1e6, "Mi": 1 << 20, "G": 1e9, "Gi": 1 << 30,
	"T": 1e12, "Ti": 1 << 40, "P": 1e15, "Pi": 1 << 50, "E": 1e18, "Ei": 1 << 60,
}

// jsonNumber is the number syntax Arvados accepts before the unit.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// ParseByteSize reads a size as Arvados's ByteSize does. Two cases differ, both where Arvados
// silently yields a wrong value: a quoted number without a unit ("1000") is that many bytes
// here (Arvados leaves the size at 0), and a number with a leading zero ("01MiB") is an error
// (Arvados reads 0).
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	split := strings.LastIndexAny(s, "0123456789.+-eE") + 1
	if split == 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with a unit (550MiB, 1GiB, 1G)", s)
	}
	if s[split-1] == 'E' {
		split-- // "4E", "4EiB": the E is exa, not an exponent
	}
	num, unit := strings.TrimSpace(s[:split]), strings.TrimSpace(s[split:])
	if !jsonNumber.MatchString(num) {
		return 0, fmt.Errorf("size %q: want a number, then optionally a unit (550MiB, 1GiB, 1G)", s)
	}
	mult, ok := byteUnits[strings.TrimSuffix(unit, "B")]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want K, Ki, M, Mi, G, Gi, T, Ti, P, Pi, E or Ei, optionally with B)", s, unit)
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		if n != 0 && (n*mult/mult != n) {
			return 0, fmt.Errorf("size %q overflows 64 bits", s)
		}
		return ByteSize(n * mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.Abs(f*float64(mult)) >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q overflows 64 bits", s)
	}
	return ByteSize(f * float64(mult)), nil
}

// String writes the size with the largest binary unit that divides it ("550MiB", "1GiB"),
// or as plain bytes.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"EiB", 1 << 60}, {"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// Bytes returns the size as an int64.
func (b ByteSize) Bytes() int64 { return int64(b) }

// parseEnvMap reads KEY=VALUE words into a map. It never shows a value in an error: job
// environment values may be secrets.
func parseEnvMap(words []string) (map[string]string, error) {
	m := make(map[string]string, len(words))
	var errs []error
	for i, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("word %d: want KEY=VALUE", i+1))
			continue
		}
		m[k] = v
	}
	return m, errors.Join(errs...)
}
