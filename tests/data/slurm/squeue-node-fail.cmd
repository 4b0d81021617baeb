squeue --noheader --states=all --jobs=71 -O 'JobID:|,State:|,BatchHost:|,NodeList:|,exit_code:|,Reason:|'
