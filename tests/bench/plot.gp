# docs/bench.png from scripts/bench.sh's results: fan-out wall-time ratio vs N (left) and the
# latency percentiles of agents_wait wake-up and agents_status under wrk next to nginx (right).
# Run by scripts/bench.sh as: gnuplot -e "dir='bench-results'; output='docs/bench.png'" plot.gp
set terminal pngcairo size 1400,520 font ",11" noenhanced
set output output
set multiplot layout 1,2

set title "Fan-out: N tasks (20 ms create + 500 ms prompt), wall time / N=1"
set xlabel "N (tasks in one agents_start)"
set ylabel "wall time ratio to N = 1"
set logscale x 2
set xrange [0.8:1300]
set yrange [0.9:*]
set grid
set key top left
# Issue #20's targets at N = 256 and 1 024, beside round 1's up to N = 64.
$targets << EOD
256,1.05
1024,1.15
EOD
set datafile separator ","
plot dir."/fanout.csv" using 1:3 skip 1 with linespoints lw 2 pt 7 title "agentd", \
     [0.8:64] 1.1 with lines dt 2 lc rgb "red" title "target 1.1 (up to N = 64)", \
     $targets using 1:2 with points pt 9 ps 2 lc rgb "red" title "targets 1.05 (N = 256), 1.15 (N = 1 024)", \
     1.0 with lines dt 3 lc rgb "gray" title "ideal"

unset logscale x
unset xrange
set title "Latency percentiles (ms, log scale)"
set xlabel ""
set ylabel "ms"
set logscale y
set yrange [0.01:*]
set key top right
set datafile separator whitespace
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -20
set xrange [-0.6:*]
plot dir."/latency.dat" using 2:xtic(1) title "p50", \
     "" using 3 title "p99"
unset multiplot
