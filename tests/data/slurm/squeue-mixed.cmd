squeue --noheader --states=all --jobs=65,999999 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
