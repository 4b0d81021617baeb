squeue --noheader --start --jobs=127 -o '%i|%S'
