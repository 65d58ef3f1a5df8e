# plot.gnuplot — the chart of benchmarks/run_echo.sh: messages/s per server per scenario.
#
#   gnuplot -e "datafile='echo.dat'; outfile='echo.png'; nservers=4; control=1; subtitle='...'" plot.gnuplot
#
# datafile: a header line "scenario asio control evnet node asio/asio control/asio ...", then one
# line per scenario: its quoted label, each server's messages/s (stream: 16 KiB chunks/s;
# connect: connections/s), then each server's ratio to asio (run_echo.sh: the median over the
# rounds of the ratio within a round). Top: messages/s, log scale; bottom: the ratios.
# control=1: the second column is the control (a second raw asio process), drawn in grey.
if (!exists("subtitle")) subtitle = ''
if (!exists("control")) control = 0

set terminal pngcairo size 1000,720 font "DejaVu Sans,10"
set output outfile
set datafile separator whitespace
set key autotitle columnheader
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set xtics nomirror scale 0
set linetype 1 lc rgb "#4e79a7"
set linetype 2 lc rgb "#e15759"
set linetype 3 lc rgb "#59a14f"
set linetype 4 lc rgb "#f28e2b"
if (control) {
  set linetype 2 lc rgb "#bab0ac"
  set linetype 3 lc rgb "#59a14f"
  set linetype 4 lc rgb "#f28e2b"
}

set multiplot layout 2,1 title "Echo servers: raw asio, evnet, Node.js".\
  (control ? " (control: a second raw asio process)" : "")."\n{/*0.8 ".subtitle."}\n".\
  "{/*0.8 messages/s: 64-byte echoes; stream: 16 KiB chunks/s; connect: connections/s}"

set ylabel "messages/s (log scale)"
set logscale y
set format y "%.0s%c"
set key outside right top
plot for [i=2:nservers+1] datafile using i:xtic(1) title columnheader(i)

unset logscale y
set format y "%.1fx"
set ylabel "relative to raw asio"
set yrange [0:*]
set key outside right top
plot for [i=2:nservers+1] datafile using (column(i+nservers)):xtic(1) title columnheader(i), \
     1 with lines dt 2 lc rgb "#333333" notitle

unset multiplot
