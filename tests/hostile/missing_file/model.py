"""Never imported: the weights file named in the manifest is not there."""
