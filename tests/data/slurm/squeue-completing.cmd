squeue --noheader --states=all --jobs=68 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
