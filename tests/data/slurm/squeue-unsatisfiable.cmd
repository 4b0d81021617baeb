squeue --noheader --states=all --jobs=64 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
