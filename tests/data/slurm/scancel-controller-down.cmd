scancel -v 65
