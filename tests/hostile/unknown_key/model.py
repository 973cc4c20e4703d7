"""Never imported: the manifest has an unknown key."""
