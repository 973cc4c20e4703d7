"""The leaderboard, read from the records: `ranking` (collect and rank), `tables` (Markdown, CSV,
the HTML page), `pages` (one per evaluation and per team), `text` (a record's paths and first lines
as shown), `plots` (accuracy against score, a team's slide; with `axes`, `labels`, `team_table` and
`style`) and `render` (the five files, the pages and the slides)."""
