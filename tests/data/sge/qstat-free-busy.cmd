qstat -f -F gpu -xml
