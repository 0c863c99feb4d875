package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// dashboardPath is the Grafana dashboard shipped for these metrics.
const dashboardPath = "../../docs/grafana-dashboard.json"

// metricRef finds metric names in PromQL: ours and the standard collectors'.
var metricRef = regexp.MustCompile(`\b(?:dispatch_slurm|go|process)_[a-z0-9_]+`)

func TestTheDashboardQueriesOnlyMetricsThatExist(t *testing.T) {
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardPath, err)
	}
	mfs, err := scenario(t).Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	queried := map[string]bool{}
	graphs := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		graphs++
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			refs := metricRef.FindAllString(tg.Expr, -1)
			if len(refs) == 0 {
				t.Errorf("panel %q: no metric in %q", p.Title, tg.Expr)
			}
			for _, name := range refs {
				base := name
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if trimmed, ok := strings.CutSuffix(name, suffix); ok && have[trimmed] {
						base = trimmed
					}
				}
				queried[base] = true
				if !have[base] {
					t.Errorf("panel %q queries %s, which the registry does not have", p.Title, name)
				}
			}
		}
	}
	if graphs < 10 {
		t.Errorf("%d panels, want the main series covered", graphs)
	}
	// Every metric of ours is on the dashboard.
	for name := range have {
		if strings.HasPrefix(name, namespace+"_") && !queried[name] {
			t.Errorf("%s is on no panel", name)
		}
	}
}
