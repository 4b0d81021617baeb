squeue --noheader --states=all --jobs=70 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
