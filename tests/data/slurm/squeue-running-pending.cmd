squeue --noheader --states=all --jobs=59,60,61,62,63 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
