package fakearvados

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// predicate reports whether a record matches a filter.
type predicate func(*record) bool

// parseFilters reads the "filters" parameter: a JSON array of [attribute, operator, operand]
// (decoded as JSON, so Go's "\u003e" for ">" works). Conditions use SQL semantics: a NULL value
// matches nothing but "= null", "!= null" turns into IS NOT NULL, and "not in" matches NULL
// (as Arvados adds "OR attr IS NULL").
func parseFilters(p params) ([]predicate, *apiError) {
	s, ok := p.get("filters")
	if !ok || s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber() // priorities exceed float64's exact range
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errArgument(`Could not parse "filters" param as an array`)
	}
	if v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, errArgument(`Could not parse "filters" param as an array`)
	}
	preds := make([]predicate, 0, len(arr))
	for _, f := range arr {
		pred, err := compileFilter(f)
		if err != nil {
			return nil, err
		}
		preds = append(preds, pred)
	}
	return preds, nil
}

func compileFilter(f any) (predicate, *apiError) {
	fa, ok := f.([]any)
	if !ok {
		return nil, errArgument("Invalid element in filters array: %s is not an array", inspect(f))
	}
	if len(fa) != 3 {
		return nil, errArgument("Invalid element in filters array: %s is not [attribute, operator, operand]", inspect(f))
	}
	op, ok := fa[1].(string)
	if !ok {
		return nil, errArgument("Invalid operator '%v' (%s) in filter", fa[1], rubyClass(fa[1]))
	}
	var attrs []string
	switch a := fa[0].(type) {
	case string:
		attrs = []string{a}
	case []any:
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, errArgument("Invalid attribute '%v' in filter", x)
			}
			attrs = append(attrs, s)
		}
	default:
		return nil, errArgument("Invalid attribute '%v' in filter", fa[0])
	}
	// Several attributes are OR'ed, as Arvados does.
	var preds []predicate
	for _, attr := range attrs {
		col := columns[attr]
		if col == nil {
			return nil, errArgument("Invalid attribute '%s' in filter", attr)
		}
		pred, err := compileCond(col, strings.ToLower(op), fa[2])
		if err != nil {
			return nil, err
		}
		preds = append(preds, pred)
	}
	return func(r *record) bool {
		for _, p := range preds {
			if p(r) {
				return true
			}
		}
		return false
	}, nil
}

// value is a typed operand.
type value struct {
	s string
	n int64
	t time.Time
}

func compileCond(col *column, op string, operand any) (predicate, *apiError) {
	switch op {
	case "=", "!=", "<", "<=", ">", ">=", "like", "ilike":
		return compileCompare(col, op, operand)
	case "in", "not in":
		return compileIn(col, op, operand)
	case "is_a":
		return compileIsA(col, operand)
	default:
		return nil, errArgument("Invalid operator '%s'", op)
	}
}

func compileCompare(col *column, op string, operand any) (predicate, *apiError) {
	if operand == nil {
		switch op {
		case "=":
			return func(r *record) bool { return isNull(col, r) }, nil
		case "!=":
			return func(r *record) bool { return !isNull(col, r) }, nil
		}
		return nil, errArgument("Invalid operand type 'NilClass' for '%s' operator in filters", op)
	}
	if op == "like" || op == "ilike" {
		pat, ok := operand.(string)
		if !ok || col.typ != colString {
			return nil, errArgument("Invalid operand type '%s' for '%s' operator in filters", rubyClass(operand), op)
		}
		re := likeRegexp(pat, op == "ilike")
		return func(r *record) bool {
			v, ok := col.str(r)
			return ok && re.MatchString(v)
		}, nil
	}
	v, err := typedOperand(col, op, operand)
	if err != nil {
		return nil, err
	}
	return func(r *record) bool {
		c, ok := compareValue(col, r, v)
		if !ok {
			return false
		}
		switch op {
		case "=":
			return c == 0
		case "!=":
			return c != 0
		case "<":
			return c < 0
		case "<=":
			return c <= 0
		case ">":
			return c > 0
		default:
			return c >= 0
		}
	}, nil
}

func compileIn(col *column, op string, operand any) (predicate, *apiError) {
	arr, ok := operand.([]any)
	if !ok {
		return nil, errArgument("Invalid operand type '%s' for '%s' operator in filters", rubyClass(operand), op)
	}
	var vals []value
	hasNull := false
	for _, x := range arr {
		if x == nil {
			hasNull = true
			continue
		}
		v, err := typedOperand(col, op, x)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	member := func(r *record) (in, null bool) {
		for _, v := range vals {
			c, ok := compareValue(col, r, v)
			if !ok {
				return false, true
			}
			if c == 0 {
				return true, false
			}
		}
		return false, isNull(col, r)
	}
	if op == "in" {
		return func(r *record) bool { in, _ := member(r); return in }, nil
	}
	return func(r *record) bool {
		in, null := member(r)
		switch {
		case null:
			// Arvados adds "OR attr IS NULL" unless the list itself has a null.
			return !hasNull
		case in:
			return false
		default:
			// SQL: x NOT IN (..., NULL) is never true.
			return !hasNull
		}
	}, nil
}

// kindInfix maps the kinds is_a knows to their uuid infix.
var kindInfix = map[string]string{
	"arvados#container":              "dz642",
	"arvados#containerRequest":       "xvhdp",
	"arvados#apiClientAuthorization": "gj3su",
	"arvados#user":                   "tpzed",
	"arvados#log":                    "57u5n",
}

func compileIsA(col *column, operand any) (predicate, *apiError) {
	var kinds []string
	switch k := operand.(type) {
	case string:
		kinds = []string{k}
	case []any:
		for _, x := range k {
			if s, ok := x.(string); ok {
				kinds = append(kinds, s)
			}
		}
	default:
		return nil, errArgument("Invalid operand type '%s' for 'is_a' operator in filters", rubyClass(operand))
	}
	if col.typ != colString {
		return nil, errArgument("Invalid attribute '%s' for 'is_a' operator in filters", col.name)
	}
	return func(r *record) bool {
		v, ok := col.str(r)
		if !ok || len(v) != 27 {
			return false
		}
		for _, k := range kinds {
			if infix, ok := kindInfix[k]; ok && v[5:12] == "-"+infix+"-" {
				return true
			}
		}
		return false
	}, nil
}

// typedOperand converts a JSON operand to the column's type the way PostgreSQL would cast it.
func typedOperand(col *column, op string, x any) (value, *apiError) {
	switch col.typ {
	case colInt:
		switch n := x.(type) {
		case json.Number:
			i, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				return value{}, errArgument("Invalid operand '%s' for integer attribute '%s'", n, col.name)
			}
			return value{n: i}, nil
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			if err != nil {
				return value{}, rubyError(422, "ActiveRecord::StatementInvalid",
					fmt.Sprintf("PG::InvalidTextRepresentation: ERROR:  invalid input syntax for type bigint: %q", n))
			}
			return value{n: i}, nil
		}
	case colTime:
		if s, ok := x.(string); ok {
			t, err := parseTime(s)
			if err != nil {
				return value{}, errArgument("Invalid operand '%s' for timestamp attribute '%s'", s, col.name)
			}
			return value{t: t}, nil
		}
	default:
		if s, ok := x.(string); ok {
			return value{s: s}, nil
		}
	}
	return value{}, errArgument("Invalid operand type '%s' for '%s' operator in filters", rubyClass(x), op)
}

// compareValue compares a record's column with v; false if the column is NULL.
func compareValue(col *column, r *record, v value) (int, bool) {
	switch col.typ {
	case colInt:
		n, ok := col.num(r)
		if !ok {
			return 0, false
		}
		switch {
		case n < v.n:
			return -1, true
		case n > v.n:
			return 1, true
		}
		return 0, true
	case colTime:
		t, ok := col.tm(r)
		if !ok {
			return 0, false
		}
		return t.Compare(v.t), true
	default:
		s, ok := col.str(r)
		if !ok {
			return 0, false
		}
		return strings.Compare(s, v.s), true
	}
}

func isNull(col *column, r *record) bool {
	var ok bool
	switch col.typ {
	case colInt:
		_, ok = col.num(r)
	case colTime:
		_, ok = col.tm(r)
	default:
		_, ok = col.str(r)
	}
	return !ok
}

var timeLayouts = []string{
	time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02",
}

func parseTime(s string) (time.Time, error) {
	var err error
	for _, l := range timeLayouts {
		var t time.Time
		if t, err = time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// likeRegexp turns an SQL LIKE pattern (% and _ wildcards) into a regexp.
func likeRegexp(pat string, fold bool) *regexp.Regexp {
	var b strings.Builder
	if fold {
		b.WriteString("(?is)")
	} else {
		b.WriteString("(?s)")
	}
	b.WriteByte('^')
	for _, r := range pat {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteByte('.')
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteByte('$')
	return regexp.MustCompile(b.String())
}

// rubyClass names a JSON value's type as the real server's messages do.
func rubyClass(x any) string {
	switch v := x.(type) {
	case nil:
		return "NilClass"
	case string:
		return "String"
	case bool:
		if v {
			return "TrueClass"
		}
		return "FalseClass"
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return "Float"
		}
		return "Integer"
	case []any:
		return "Array"
	case map[string]any:
		return "Hash"
	default:
		return fmt.Sprintf("%T", x)
	}
}

func inspect(x any) string {
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprint(x)
	}
	return string(b)
}
