package arvados

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnvReadsTheArvadosVariables(t *testing.T) {
	tests := []struct {
		name, host, token, insecure string
		want                        Config
		wantErr                     string
	}{
		{name: "host and token are read as they are", host: "zzzzz.example.com", token: testToken,
			want: Config{Host: "zzzzz.example.com", Token: testToken}},
		{name: "insecure 1 skips verification", host: "h", token: "t", insecure: "1",
			want: Config{Host: "h", Token: "t", Insecure: true}},
		{name: "insecure yes in any case skips verification", host: "h", token: "t", insecure: "YES",
			want: Config{Host: "h", Token: "t", Insecure: true}},
		{name: "insecure 0 verifies", host: "h", token: "t", insecure: "0", want: Config{Host: "h", Token: "t"}},
		{name: "an unreadable insecure is an error naming the variable", insecure: "maybe",
			wantErr: "ARVADOS_API_HOST_INSECURE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvHost, tt.host)
			t.Setenv(EnvToken, tt.token)
			t.Setenv(EnvInsecure, tt.insecure)
			got, err := ConfigFromEnv()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Host != tt.want.Host || got.Token != tt.want.Token || got.Insecure != tt.want.Insecure {
				t.Errorf("got host %q insecure %v (err %v), want %q %v", got.Host, got.Insecure, err, tt.want.Host, tt.want.Insecure)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; none means valid
	}{
		{name: "host and token are enough", cfg: Config{Host: "zzzzz.example.com", Token: "t"}},
		{name: "a host with a port is fine", cfg: Config{Host: "zzzzz.example.com:8443", Token: "t"}},
		{name: "a missing host says to set ARVADOS_API_HOST", cfg: Config{Token: "t"},
			wantErr: []string{"set ARVADOS_API_HOST"}},
		{name: "a missing token says to set ARVADOS_API_TOKEN", cfg: Config{Host: "h"},
			wantErr: []string{"set ARVADOS_API_TOKEN"}},
		{name: "every problem is reported at once", cfg: Config{},
			wantErr: []string{"set ARVADOS_API_HOST", "set ARVADOS_API_TOKEN"}},
		{name: "a host with a path is not host[:port]", cfg: Config{Host: "example.com/arvados", Token: "t"},
			wantErr: []string{"not host[:port]"}},
		{name: "a token with a newline is refused without showing it", cfg: Config{Host: "h", Token: "s3cr3t\n"},
			wantErr: []string{"white space"}},
		{name: "plain http to a remote host is refused", cfg: Config{Host: "example.com", Token: "t", Scheme: "http"},
			wantErr: []string{"only for loopback"}},
		{name: "plain http to 127.0.0.1 is allowed", cfg: Config{Host: "127.0.0.1:8000", Token: "t", Scheme: "http"}},
		{name: "plain http to localhost is allowed", cfg: Config{Host: "localhost:8000", Token: "t", Scheme: "http"}},
		{name: "plain http to ::1 is allowed", cfg: Config{Host: "[::1]:8000", Token: "t", Scheme: "http"}},
		{name: "an http prefix on the host sets the scheme", cfg: Config{Host: "http://127.0.0.1:8000", Token: "t"}},
		{name: "an http prefix on a remote host is refused", cfg: Config{Host: "http://example.com", Token: "t"},
			wantErr: []string{"only for loopback"}},
		{name: "a prefix that contradicts the scheme is refused",
			cfg: Config{Host: "https://example.com", Token: "t", Scheme: "http"}, wantErr: []string{"Config.Scheme"}},
		{name: "an unknown scheme is refused", cfg: Config{Host: "example.com", Token: "t", Scheme: "ftp"},
			wantErr: []string{`"ftp"`}},
		{name: "negative durations are refused", cfg: Config{Host: "h", Token: "t", Timeout: -time.Second},
			wantErr: []string{"negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				if _, err := NewClient(tt.cfg); err != nil {
					t.Errorf("NewClient: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q shows the token", err)
			}
			if _, err := NewClient(tt.cfg); err == nil {
				t.Error("NewClient accepted the configuration")
			}
		})
	}
}

func TestNewClientAppliesDefaults(t *testing.T) {
	c, err := NewClient(Config{Host: "https://zzzzz.example.com/", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "https://zzzzz.example.com/arvados/v1/" || c.Host() != "zzzzz.example.com" {
		t.Errorf("base %q host %q", c.base, c.Host())
	}
	want := RetryPolicy{MaxAttempts: 5, MaxElapsed: 30 * time.Second, BaseDelay: 250 * time.Millisecond, MaxDelay: 5 * time.Second}
	if c.cfg.Retry != want || c.cfg.Timeout != 30*time.Second || c.cfg.MaxItemsPerResponse != 1000 {
		t.Errorf("defaults: retry %+v timeout %s page %d", c.cfg.Retry, c.cfg.Timeout, c.cfg.MaxItemsPerResponse)
	}
	if c.cfg.HTTPClient == nil || c.cfg.Logger == nil || c.cfg.Now == nil || c.cfg.Sleep == nil {
		t.Error("a default is missing")
	}
}

func TestParseBool(t *testing.T) {
	for s, want := range map[string]bool{"1": true, "true": true, "True": true, "yes": true, " yes ": true,
		"": false, "0": false, "false": false, "no": false, "NO": false} {
		if got, err := ParseBool(s); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"2", "on", "y"} {
		if _, err := ParseBool(s); err == nil {
			t.Errorf("ParseBool(%q) accepted", s)
		}
	}
}
