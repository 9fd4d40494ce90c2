# Chart of fltport-bench runs: the median round trip of every measured row,
# one bar per run (e.g. pinned and unpinned), log scale.  `make bench-chart`
# runs it; by hand:
#   python3 bench/benchjson.py chart-data a.json b.json > chart.dat
#   gnuplot -e "datafile='chart.dat'; outfile='chart.png'; nsets=2" bench/chart.gp
if (!exists("datafile")) datafile = "chart.dat"
if (!exists("outfile")) outfile = "benchmarks.png"
if (!exists("nsets")) nsets = 1

set terminal pngcairo size 1500,760 font "DejaVu Sans,10"
set output outfile
set title "fltport-bench: median time per operation (µs, log scale; lower is faster)"
set datafile separator "\t"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 10
set yrange [0.1:*]  # shared-memory rows spin below 1 µs unpinned
set ylabel "median µs per operation"
set grid ytics mytics
set xtics rotate by -40 scale 0 nomirror
set key top left reverse Left box opaque
set lmargin 10
set bmargin 9

plot for [i=2:nsets+1] datafile using i:xtic(1) title columnheader(i)
