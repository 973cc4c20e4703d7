"""The leaderboard, read from the records: `ranking` (collect and rank), `tables` (Markdown, CSV,
the HTML page), `plots` (accuracy against score, a team's path) and `render` (the five files)."""
