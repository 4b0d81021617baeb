squeue --noheader --states=all --jobs=63 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
