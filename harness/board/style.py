"""The figures' constants, in one place: sizes (inches, dpi, points), colours, the axes' ranges and
the label placement's reach. Font sizes and marker sizes are in points (1/72 inch): at the
leaderboard's 120 dpi one point is 1.67 pixels, at the slides' 150 dpi 2.08 pixels."""

from __future__ import annotations

# -- canvases ---------------------------------------------------------------------------------------------
WIDE = (16, 9)  # inches; at 120 dpi 1920 x 1080
WIDE_DPI = 120
SLIDE = (12.8, 7.2)  # a 16:9 slide; at 150 dpi 1920 x 1080
SLIDE_DPI = 150
WEB_SLIDE_DPI = 100  # the team slide the board writes next to each team's page: 1280 x 720 px

# -- colours ----------------------------------------------------------------------------------------------
ELIGIBLE, NOT_ELIGIBLE, FRONT, THRESHOLD, REFERENCE = "#1f5fa8", "#8a8f96", "#e07b00", "#c62828", "#3d3d3d"
OTHERS = "#c9cdd2"  # the other teams' points on a team's slide
ATTEMPT_TEXT = "#50555c"  # labels of unranked teams' closest attempts
NOTE_TEXT = "#555b62"  # the board's notes, in the plot's footer
PATH = "#555555"  # a team's path from its first submission to its best

# -- ranges -----------------------------------------------------------------------------------------------
MIN_X_DECADES = 1.0  # the score axis spans at least this many decades
X_PAD_DECADES = 0.12  # score axis: margin on each side, decades, plus X_PAD_SHARE of the span
X_PAD_SHARE = 0.06
MIN_Y_SPAN = 1.0  # accuracy axis: at least this many points (%) when zoomed on the eligible band
Y_PAD = 0.2  # accuracy axis: margin around the band, points (%), at least
Y_PAD_SHARE = 0.12  # ... or this share of the band, whichever is more
FLOOR_BELOW_THRESHOLD = 25.0  # without a band (no eligible point, team slides): the floor, points under it
TEAM_SPREAD = 10.0  # team slides: attempts more than this many points under the team's best are edge markers
EDGE_INSET = 0.012  # points outside the range sit this share of the axis inside the border

# -- marks and text ---------------------------------------------------------------------------------------
LABEL_SIZE = 17  # team labels, pt
ATTEMPT_SIZE = 15  # labels of unranked teams' closest attempts, pt
NOTE_SIZE = 14  # the board's notes, pt
COUNT_SIZE = 15  # "×2" beside edge markers standing for several points, pt
COUNT_STEPS = (12, 28, 44)  # pt: the count's distance from its marker, nearest first (the next while overlapping)
STACK_R = 3.0  # edge markers whose centres lie closer than this (pt) are one stack, counted
MAX_ATTEMPT_LABELS = 30  # more unranked teams than this: their points stay unlabelled
MARK_R, DOT_R = 10.5, 6.0  # points: half-size of a best's marker, of any other point, pt
TIE_R = 10.5  # labelled points whose centres lie closer than this (pt) share one label
LABEL_REACH = 120.0  # a label's box lies at most this far (pt) from its point
LABEL_LINE_CHARS = 36  # a label listing several teams wraps at this many characters a line
LABEL_LINES = 4  # ... on at most this many lines (then "N teams: a, b, …")

# -- the team slide ---------------------------------------------------------------------------------------
TABLE_ROWS = 14  # attempts listed beside the plot (first, best, latest and the most recent others)
TABLE_SIZE = 15  # pt
ARROW_LENGTH = 11.0  # the path's arrowheads: length, pt
ARROW_SHRINK = 8.0  # ... their tip this far short of the point they lead to, pt

RC = {"font.size": 20, "axes.labelsize": 24, "axes.titlesize": 26, "xtick.labelsize": 20, "ytick.labelsize": 20,
      "legend.fontsize": 18, "svg.fonttype": "path", "pdf.fonttype": 42, "svg.hashsalt": "leaderboard",
      "font.family": "DejaVu Sans"}
