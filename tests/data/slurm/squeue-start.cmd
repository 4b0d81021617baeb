squeue --noheader --start --jobs=127,128,129 -o '%i|%S'
