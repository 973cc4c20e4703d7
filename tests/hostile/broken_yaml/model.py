"""Never imported: the manifest does not parse."""
