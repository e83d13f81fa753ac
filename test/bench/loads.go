package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// XfrFigures is what the AXFR benchmark measured for a fresh Shoestring
// node taking the zone from Knot.
type XfrFigures struct {
	Took     time.Duration // node start → first correct answer
	HWM, RSS uint64        // KiB: peak, and once served
}

// PrintLoads prints the big-zone summary (`-million`): for each way a
// server gets the zone — its zone file, (Shoestring) its store after a
// restart, (Shoestring) an AXFR from Knot — the peak RSS and the time to
// the first correct answer, and the steady RSS once loaded, with ours as a
// multiple of each reference server's. The store and AXFR rows are
// compared with the reference's file load: the bar is that no way of
// loading costs more than the reference loading its file.
func PrintLoads(w io.Writer, rows []*Row, ours string, refs []string, xfr *XfrFigures) {
	byName := map[string]*Row{}
	for _, r := range rows {
		if r.OK() {
			byName[r.Name] = r
		}
	}
	o := byName[ours]
	if o == nil {
		fmt.Fprintf(w, "no %s figures for the load summary\n", ours)
		return
	}
	var have []*Row
	for _, n := range refs {
		if r := byName[n]; r != nil {
			have = append(have, r)
		}
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t"+ours+"\t")
	for _, r := range have {
		fmt.Fprint(tw, r.Name+"\t")
	}
	for _, r := range have {
		fmt.Fprintf(tw, "%s/%s\t", ours, r.Name)
	}
	fmt.Fprintln(tw)
	line := func(what, val string, refVal func(*Row) string, ourX float64, refX func(*Row) float64) {
		fmt.Fprintf(tw, "%s\t%s\t", what, val)
		for _, r := range have {
			fmt.Fprint(tw, refVal(r)+"\t")
		}
		for _, r := range have {
			fmt.Fprint(tw, ratio(ourX, refX(r))+"\t")
		}
		fmt.Fprintln(tw)
	}
	dash := func(*Row) string { return "-" }
	fileHWM := func(r *Row) float64 { return float64(r.Mem.HWM) }
	fileLoad := func(r *Row) float64 { return medianDur(r.FileLoad).Seconds() }
	line("peak RSS MiB, file load", mib(o.Mem.HWM), func(r *Row) string { return mib(r.Mem.HWM) }, float64(o.Mem.HWM), fileHWM)
	if o.StoreMem != nil {
		line("peak RSS MiB, restart from store", mib(o.StoreMem.HWM), dash, float64(o.StoreMem.HWM), fileHWM)
	}
	if xfr != nil {
		line("peak RSS MiB, AXFR into a fresh node", mib(xfr.HWM), dash, float64(xfr.HWM), fileHWM)
	}
	line("steady RSS MiB, serving", mib(o.Mem.RSS), func(r *Row) string { return mib(r.Mem.RSS) }, float64(o.Mem.RSS), func(r *Row) float64 { return float64(r.Mem.RSS) })
	line("file load s", secs(o.FileLoad), func(r *Row) string { return secs(r.FileLoad) }, medianDur(o.FileLoad).Seconds(), fileLoad)
	if len(o.StoreLoad) > 0 {
		line("store load s", secs(o.StoreLoad), dash, medianDur(o.StoreLoad).Seconds(), fileLoad)
	}
	if xfr != nil {
		line("AXFR load s", fmt.Sprintf("%.3fs", xfr.Took.Seconds()), dash, xfr.Took.Seconds(), fileLoad)
	}
	tw.Flush()
	fmt.Fprintln(w, "(store and AXFR rows: ratios to the other server's file load; peak RSS is VmHWM, summed over a server's processes)")
}
