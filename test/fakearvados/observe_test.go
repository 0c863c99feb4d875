package fakearvados

import (
	"reflect"
	"testing"
)

func TestUpdateAttrsReadsTheContainerFieldOfEveryBodyForm(t *testing.T) {
	want := map[string]any{"state": "Cancelled"}
	for _, tt := range []struct {
		name, contentType, body string
		want                    map[string]any
	}{
		{"form fields", "application/x-www-form-urlencoded", `container=%7B%22state%22%3A%22Cancelled%22%7D`, want},
		{"a JSON object holding an object", "application/json", `{"container":{"state":"Cancelled"}}`, want},
		{"a JSON object holding a string", "application/json; charset=utf-8", `{"container":"{\"state\":\"Cancelled\"}"}`, want},
		{"no container field", "application/json", `{"other":1}`, map[string]any{"unparsed": true}},
		{"garbage", "application/json", `{`, map[string]any{"unparsed": true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := UpdateAttrs(tt.contentType, []byte(tt.body)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UpdateAttrs = %v, want %v", got, tt.want)
			}
		})
	}
}
