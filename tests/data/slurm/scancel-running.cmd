scancel -v 76
