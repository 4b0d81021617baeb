squeue --noheader --states=all --jobs=67 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
