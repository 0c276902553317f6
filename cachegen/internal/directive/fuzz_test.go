package directive

import (
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"//cache:repo",
		"//cache:skip",
		"//cache:get key=user:{id} ttl=5m jitter=30s tags=user:{id},users swr=1m negative=10s lock=distributed by=UserID",
		"//cache:get\tkey=page:{in.OwnerID}:{in.Cursor} ttl=1h30m tags={result[].ID},page:{result.Next}",
		"//cache:get key=user:{ids[]}:{ids[].Region} ttl=1h by=ID",
		"//cache:get key=k:{größe.Ünï_2} ttl=1ms",
		"//cache:put key=user:{result.ID} ttl=1h tags=user:{result.ID} invalidate=users,team:{result[].TeamID}",
		"//cache:invalidate keys=user:{id},email:{in.Email} tags=user:{id}",
		"//cache:",
		"//cache:fetch",
		"//cache:get key={a[0]} ttl=-1s tags=a,,b lock=x by=1",
		"//cache:get key={a{b}} ttl=1s",
		"//cache:get key=}{}{ ttl=",
		"//cache:invalidate keys={result[]} tags={x[]}",
		"//cache:get key={a\xffb} ttl=1s",
		"// cache:get",
		"//cache:repo strict",
		"//cache:get key=k:{id} ttl=5m jitter=5m unkeyed=a,b",
		`//cache:get key="k" ttl=1s`,
		"//cache:invalidate keys=#a,b",
		"//cache:gets key=k",
		"//cache:get key=k:{id} ttl=1m negative=10s notfound=*gorm.ErrRecordNotFound",
		"//cache:get key=k:{id} ttl=1m notfound=E",
		"//cache:put key=u:{result.ID} ttl=1h tags=u:{result.ID} attach=users,{result[].ID} invalidate=x",
		"//cache:get key=u:{id} ttl=5m swr=1m l1=30s",
		"//cache:get key=u:{id} ttl=5m l1=10m",
		"//cache:get key=u:{id} ttl=5m l1=0 l1=x",
		"//cache:put key=u:{result.ID} ttl=5m l1=1s",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if off, msg := Misspelt(line); msg != "" && (off < 0 || off > len(line) || strings.HasPrefix(line, "//cache:")) {
			t.Errorf("Misspelt(%q) = %d, %q", line, off, msg)
		}
		d, errs := Parse(line)
		if !strings.HasPrefix(line, "//cache:") {
			if d != nil || errs != nil {
				t.Fatalf("Parse(%q) = %v, %v for a non-directive line", line, d, errs)
			}
			return
		}
		for _, e := range errs {
			if e.Offset < 0 || e.Offset > len(line) {
				t.Errorf("Parse(%q): error offset %d out of [0, %d]: %s", line, e.Offset, len(line), e.Msg)
			}
		}
		if len(errs) > 0 {
			return
		}
		if d == nil {
			t.Fatalf("Parse(%q) = nil, nil for a directive line", line)
		}
		if d.L1 != 0 && (d.Kind != KindGet || d.L1 < 0 || d.L1 > d.TTL) {
			t.Errorf("Parse(%q): l1=%v accepted on a cache:%s with ttl=%v", line, d.L1, d.Kind, d.TTL)
		}
		if nf := d.NotFound; nf != nil && (nf.Offset < 0 || !strings.HasPrefix(line[nf.Offset:], nf.String())) {
			t.Errorf("Parse(%q): notfound %q not found at offset %d", line, nf, nf.Offset)
		}
		var ts []*Template
		if d.Key != nil {
			ts = append(ts, d.Key)
		}
		ts = append(ts, d.Keys...)
		ts = append(ts, d.Tags...)
		ts = append(ts, d.Invalidate...)
		ts = append(ts, d.Attach...)
		for _, tm := range ts {
			if tm.Offset < 0 || tm.Offset+len(tm.Raw) > len(line) || line[tm.Offset:tm.Offset+len(tm.Raw)] != tm.Raw {
				t.Errorf("Parse(%q): template %q not found at offset %d", line, tm.Raw, tm.Offset)
			}
			var b strings.Builder
			for i, s := range tm.Segments {
				if s.Ref == nil {
					if s.Literal == "" || (i > 0 && tm.Segments[i-1].Ref == nil) {
						t.Errorf("Parse(%q): template %q has an empty or unmerged literal", line, tm.Raw)
					}
					b.WriteString(s.Literal)
					continue
				}
				r := "{" + s.Ref.String() + "}"
				if s.Ref.Offset < 1 || !strings.HasPrefix(line[s.Ref.Offset-1:], r) {
					t.Errorf("Parse(%q): ref %s not found at offset %d", line, r, s.Ref.Offset)
				}
				b.WriteString(r)
			}
			if b.String() != tm.Raw {
				t.Errorf("Parse(%q): segments render %q, want %q", line, b.String(), tm.Raw)
			}
		}
	})
}
