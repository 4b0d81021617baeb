squeue --noheader --states=all --jobs=999999 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
