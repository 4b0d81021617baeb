squeue --noheader --states=all --jobs=61,62,63,64,65 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
