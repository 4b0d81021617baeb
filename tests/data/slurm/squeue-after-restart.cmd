squeue --noheader --states=all --jobs=65,66 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
