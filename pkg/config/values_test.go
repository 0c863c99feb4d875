package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseDurationAcceptsGoAndArvadosForms(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     time.Duration
	}{
		{"seconds", "10s", 10 * time.Second},
		{"minutes", "1m", time.Minute},
		{"hours and minutes", "1h30m", 90 * time.Minute},
		{"milliseconds", "500ms", 500 * time.Millisecond},
		{"a fraction", "1.5s", 1500 * time.Millisecond},
		{"a bare zero, as Arvados allows", "0", 0},
		{"zero seconds", "0s", 0},
		{"surrounding spaces", " 2m ", 2 * time.Minute},
		{"a negative one (Validate refuses it later)", "-5s", -5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseDurationRefusesWhatArvadosRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, wantErr string }{
		{"a number of seconds without a unit", "10", `write 10s`},
		{"an unknown unit", "10x", "want a number with a unit"},
		{"words", "ten seconds", "want a number with a unit"},
		{"nothing", "", "want a number with a unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDuration(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseDuration(%q) error = %v; want one containing %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestFormatDurationDropsZeroTailsAsArvadosDoes(t *testing.T) {
	for in, want := range map[time.Duration]string{
		time.Hour: "1h", 5 * time.Minute: "5m", 10 * time.Second: "10s", 90 * time.Second: "1m30s",
		90 * time.Minute: "1h30m", 0: "0s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%v) = %q; want %q", in, got, want)
		}
		if back, err := ParseDuration(FormatDuration(in)); err != nil || back != in {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", in, back, err)
		}
	}
}

func TestParseByteSizeMatchesArvados(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int64
	}{
		{"mebibytes, the default reserve", "550MiB", 550 << 20},
		{"gibibytes", "1GiB", 1 << 30},
		{"a decimal G is 10^9", "1G", 1_000_000_000},
		{"a decimal GB is 10^9", "1GB", 1_000_000_000},
		{"kilobytes are 1000", "2K", 2000},
		{"kibibytes are 1024", "2Ki", 2048},
		{"a bare B", "512B", 512},
		{"plain bytes", "576716800", 576716800},
		{"zero", "0", 0},
		{"a space before the unit", "550 MiB", 550 << 20},
		{"surrounding spaces", " 1GiB ", 1 << 30},
		{"a fraction of a unit", "1.5GiB", 3 << 29},
		{"an exponent", "1e3", 1000},
		{"an exponent before a unit", "1e3KiB", 1000 << 10},
		{"E alone is exa", "2E", 2_000_000_000_000_000_000},
		{"EiB is exbibytes", "4EiB", 4 << 60},
		{"terabytes", "3T", 3_000_000_000_000},
		{"a negative size (Validate refuses it later)", "-1MiB", -1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseByteSize(tc.in)
			if err != nil || int64(got) != tc.want {
				t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseByteSizeRefusesNonsense(t *testing.T) {
	for _, tc := range []struct{ name, in, wantErr string }{
		{"a unit without a number", "MiB", "want a number of bytes"},
		{"nothing", "", "want a number of bytes"},
		{"an unknown unit", "5XB", `unknown unit "XB"`},
		{"a lower-case unit", "5kb", `unknown unit "kb"`},
		{"a leading zero (Arvados silently reads 0)", "01MiB", "want a number, then"},
		{"a lone sign", "-MiB", "want a number, then"},
		{"an overflow", "8EiB", "overflows"},
		{"a huge fraction", "9.9EiB", "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseByteSize(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseByteSize(%q) error = %v; want one containing %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestByteSizeStringUsesTheLargestBinaryUnit(t *testing.T) {
	for in, want := range map[ByteSize]string{
		550 << 20: "550MiB", 1 << 30: "1GiB", 1536 << 20: "1536MiB", 1000: "1000", 0: "0", 3 << 10: "3KiB",
	} {
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q; want %q", int64(in), got, want)
		}
		if back, err := ParseByteSize(in.String()); err != nil || back != in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in.String(), back, err, in)
		}
	}
}

func TestSecretNeverPrintsItself(t *testing.T) {
	const tok = "v2/zzzzz-gj3su-0123456789abcde/sekrit"
	s := struct{ Token Secret }{Secret(tok)}
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(s.Token), fmt.Sprintf("%v", s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s),
		s.Token.String(), string(j), string(y),
	} {
		if strings.Contains(out, "sekrit") || !strings.Contains(out, "redacted") {
			t.Errorf("printed secret as %q", out)
		}
	}
	if s.Token.Value() != tok {
		t.Errorf("Value() = %q", s.Token.Value())
	}
	if Secret("").String() != "" {
		t.Errorf("an empty secret prints as %q; want nothing", Secret("").String())
	}
}
