scancel -v 65 999999 77
