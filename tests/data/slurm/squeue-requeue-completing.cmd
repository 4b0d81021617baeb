squeue --noheader --states=all --jobs=69 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
